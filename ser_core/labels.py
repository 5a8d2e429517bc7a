"""The eight emotions every model of this package tells apart, in the order of its outputs.

A leaf of the package: serving, training and the app all read it, and it imports nothing."""


LABELS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
