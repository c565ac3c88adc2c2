"""AI-content provenance: verify, stamp and label media with signed C2PA manifests.

The public API. Data flows inspect -> policy -> stamp; the SDK is reached only through
``provenance._c2pa``.
"""

__version__ = "0.1.0"

from provenance.errors import (
    ConfigurationError,
    InputError,
    InputTooLargeError,
    KeyMaterialError,
    ManifestError,
    ProvenanceError,
    SigningError,
    UnsupportedMediaError,
    UpstreamConflictError,
    VerificationError,
)
from provenance.inspect import SDK_VERSION, inspect
from provenance.keys import Algorithm, CallbackSigner, FileKeySigner, Signer, init_dev_keys
from provenance.media import Limits
from provenance.models import Decision, ManifestNode, Reason, State, Verdict
from provenance.policy import POLICY_VERSION, decide
from provenance.stamp import Source, StampedAsset, StampRequest, stamp
from provenance.trust import TrustConfig
from provenance.vocabulary import LABEL_IDS, LANGUAGES, label_text

__all__ = [
    "LABEL_IDS",
    "LANGUAGES",
    "POLICY_VERSION",
    "SDK_VERSION",
    "Algorithm",
    "CallbackSigner",
    "ConfigurationError",
    "Decision",
    "FileKeySigner",
    "InputError",
    "InputTooLargeError",
    "KeyMaterialError",
    "Limits",
    "ManifestError",
    "ManifestNode",
    "ProvenanceError",
    "Reason",
    "Signer",
    "SigningError",
    "Source",
    "StampRequest",
    "StampedAsset",
    "State",
    "TrustConfig",
    "UnsupportedMediaError",
    "UpstreamConflictError",
    "Verdict",
    "VerificationError",
    "__version__",
    "decide",
    "init_dev_keys",
    "inspect",
    "label_text",
    "stamp",
]
