"""Face masking: from per-frame detections to the boxes that must be hidden in every frame."""
