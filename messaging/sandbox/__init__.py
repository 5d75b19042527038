"""Local provider emulator. See core.py for the control endpoints and options.

Each provider module defines ``setup(app, sandbox)``; list it here to serve it.
"""

from . import bandwidth, cloudvno, fonedynamics, plivo, sendblue

PROVIDER_MODULES = [bandwidth, cloudvno, fonedynamics, plivo, sendblue]
