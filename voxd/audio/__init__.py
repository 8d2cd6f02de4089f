"""From spoken chunks to a file: WAV and formats, loudness, the .m4b, its assembly, and where it is published."""
