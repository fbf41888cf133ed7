"""Speech recognition: transcripts (segments and words with times) for the text features."""
