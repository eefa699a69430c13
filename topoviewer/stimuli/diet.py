"""placeholder"""
from topoviewer.stimuli.localizer import DRAWERS, LOCALIZER_CATEGORIES, generate
DIET_CATEGORIES = LOCALIZER_CATEGORIES
def training_diet(split="train", per_category=500, size=32, seed=0):
    return generate(DRAWERS, DIET_CATEGORIES, per_category, size, seed, "diet", split, "diet")
