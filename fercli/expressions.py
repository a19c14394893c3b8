"""Expression class vocabularies shared by the stages that make or read datasets.

A leaf module (it imports nothing of fercli), so a stage of any layer can use it:
:mod:`fercli.synth` makes CK+-like clips in CK+'s label order and
:mod:`fercli.ingest.ckplus` reads the real CK+ in the same order, so both import
the one list here rather than each spelling it out.
"""

#: The seven CK+ expression classes in CK+'s label order (emotion codes 1-7; thesis 3.3.1).
CK_CLASSES = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")
