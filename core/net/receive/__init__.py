"""``receive``: a Storage SCP service that files what arrives under DIR/<patient>/..."""

from dicomtools.core.net.receive.allow import AllowError, AllowList, AllowRule, parse_rule
from dicomtools.core.net.receive.filing import Disposition, Filed, Filer
from dicomtools.core.net.receive.server import AssociationReport, ReceiveServer

__all__ = ["AllowError", "AllowList", "AllowRule", "AssociationReport", "Disposition", "Filed", "Filer",
           "ReceiveServer", "parse_rule"]
