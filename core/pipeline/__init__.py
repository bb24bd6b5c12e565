"""The pipeline: from capture files to a finished ``Analysis`` (see ``phases``)."""

from dicomtui.core.model.analysis import Analysis, AnalysisConfig
from dicomtui.core.pipeline.phases import Pipeline, analyze, open_capture

__all__ = ["Analysis", "AnalysisConfig", "Pipeline", "analyze", "open_capture"]
