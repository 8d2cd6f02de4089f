"""voxd: turn an ebook library into chaptered audiobooks, unattended."""

__version__ = "0.1.0"
