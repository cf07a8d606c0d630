"""clipper: interviews in, anonymized subtitled platform clips out."""

__version__ = "0.1.0"
