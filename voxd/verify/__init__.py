"""The read-back: every take heard by a speech recogniser and compared with its text, so that a
listener never hears skipped, repeated or invented words, and a report can prove it."""
