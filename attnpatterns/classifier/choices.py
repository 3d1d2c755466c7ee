"""The allowed values of the classifier's settings, in a module without torch (a recipe is checked where it is made,
and the CLI builds its recipes at import)."""

MODES = ("pad", "resize")  # Preprocess.mode: centre zero-pad (the original recipe) or resize to S x S
SCALES = ("none", "max", "mass")  # Preprocess.scale
HEADS = ("mlp", "linear", "wide")  # PatternCNN's feature-branch head: Linear-ReLU-Linear, one Linear, or
# "wide": a logistic regression on the features plus the Linear-ReLU-Linear head (the CNN learns what the features miss)
SELECTS = ("f1", "loss")  # how the CNN's checkpoint is chosen on the validation slice
