"""Pure builders of the Kubernetes objects the operator owns.

Every built object carries :data:`HASH_ANNOTATION`, the SHA-256 of the inputs it was
built from; the operator patches an object only when that hash changed.
"""

from typing import Final

HASH_ANNOTATION: Final = "dbkeeper.dev/config-hash"
