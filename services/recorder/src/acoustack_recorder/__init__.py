"""acoustack recorder service: audio sources, recording conditions, crash-safe WAV files."""
