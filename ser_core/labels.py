"""The eight emotions every model of this package tells apart, in the order of its outputs, and how
aroused (activated) each sounds.

A leaf of the package: serving, training and the app all read it, and it imports nothing."""


LABELS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")

# Arousal, the activation axis of Russell's circumplex: where the field agrees on each emotion. Disgust
# is in neither group: corpora and papers place it high and low alike.
HIGH_AROUSAL = ("happy", "angry", "fearful", "surprised")
LOW_AROUSAL = ("neutral", "calm", "sad")
