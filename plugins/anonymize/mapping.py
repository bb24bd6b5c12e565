"""The consistent replacement values, for the de-identification's modules and its tests.

The mapping itself lives in ``dicomtui.core.base.pseudonyms``: the HTML report (a view, which
may not import plugins) uses the same one.
"""

from dicomtui.core.base.pseudonyms import (ANON_UID_ROOT, DUMMY_DATE, DUMMY_DATETIME, DUMMY_TIME,  # noqa: F401
                                           Pseudonymizer, is_registered_uid)
