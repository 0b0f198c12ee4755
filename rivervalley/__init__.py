"""rivervalley: the science of learning-rate schedules."""
__version__ = "0.1.0"
