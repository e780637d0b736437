"""Guidance for writers: a guide sent by mail to whoever asks how to write (or sends an
empty letter), with the people who need letters now. It lists prisoners, never writers."""
