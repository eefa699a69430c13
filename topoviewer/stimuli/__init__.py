"""Stimulus sets: the procedural category localizer, the procedural training
diet, sine gratings, procedural face-identity sets, and images read from folders, files or arrays."""

from topoviewer.stimuli.diet import DIET_CATEGORIES, training_diet
from topoviewer.stimuli.faces import face_identities, face_views, transform
from topoviewer.stimuli.gratings import GRATING_HUES, GratingSet, gratings
from topoviewer.stimuli.files import StimulusSet, load_folder, load_image, load_images
from topoviewer.stimuli.lfw import LFW_CATEGORIES, lfw
from topoviewer.stimuli.localizer import LOCALIZER_CATEGORIES, localizer

__all__ = [
    "DIET_CATEGORIES",
    "GRATING_HUES",
    "GratingSet",
    "gratings",
    "LFW_CATEGORIES",
    "LOCALIZER_CATEGORIES",
    "StimulusSet",
    "face_identities",
    "face_views",
    "load_folder",
    "lfw",
    "load_image",
    "load_images",
    "localizer",
    "training_diet",
    "transform",
]
