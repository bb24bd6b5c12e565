"""DICOM over TLS (PS3.15 Annex B): a stream transform that decrypts with a key log, a server's RSA
key or the capture's embedded secrets, and rules that diagnose the handshake without them.

Modules: records and handshake parsing (handshake.py), cipher suites (suites.py), key schedules
(keyschedule.py), record protection (protection.py), secrets (keylog.py, sources.py), the
transform itself (session.py), certificates (certificates.py); the plugins are transform.py
(decoding) and rules.py (findings).
"""
