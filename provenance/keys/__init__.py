"""Signing keys: the signer interface, its implementations and the development CA."""

from provenance.keys.devca import (
    DevKeyPaths,
    IssuedChain,
    init_dev_keys,
    init_pkcs11_keys,
    issue_chain,
    load_signer,
    retired_roots,
    rotate_keys,
)
from provenance.keys.pkcs11 import Pkcs11Config, Pkcs11Signer
from provenance.keys.signers import Algorithm, CallbackSigner, FileKeySigner, Signer

__all__ = [
    "Algorithm",
    "CallbackSigner",
    "DevKeyPaths",
    "FileKeySigner",
    "IssuedChain",
    "Pkcs11Config",
    "Pkcs11Signer",
    "Signer",
    "init_dev_keys",
    "init_pkcs11_keys",
    "issue_chain",
    "load_signer",
    "retired_roots",
    "rotate_keys",
]
