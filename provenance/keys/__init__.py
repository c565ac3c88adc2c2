"""Signing keys: the signer interface, its implementations and the development CA."""

from provenance.keys.devca import DevKeyPaths, IssuedChain, init_dev_keys, issue_chain
from provenance.keys.signers import Algorithm, CallbackSigner, FileKeySigner, Signer

__all__ = [
    "Algorithm",
    "CallbackSigner",
    "DevKeyPaths",
    "FileKeySigner",
    "IssuedChain",
    "Signer",
    "init_dev_keys",
    "issue_chain",
]
