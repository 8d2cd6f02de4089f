"""From a read book to what is said: cleanup, titles, the lexicon, chunks, and how long it will take."""
