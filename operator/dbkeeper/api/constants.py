"""Names that identify the DatabaseSchema resource: API group, version, kind, annotations.

Every layer that builds, watches or patches the resource takes these from here, so the
CRD, the operator's watch and the CLI can never disagree about what the resource is.
"""

from __future__ import annotations

from typing import Final

GROUP: Final = "dbkeeper.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "DatabaseSchema"
LIST_KIND: Final = "DatabaseSchemaList"
PLURAL: Final = "databaseschemas"
SINGULAR: Final = "databaseschema"
SHORT_NAMES: Final = ("dbs",)
CATEGORIES: Final = ("dbkeeper",)
CRD_NAME: Final = f"{PLURAL}.{GROUP}"

#: Comma-separated revision ids a person has approved although the safety lint flagged
#: them; with ``spec.migrations.lint: block`` only these may be applied.
ANNOTATION_APPROVED_REVISIONS: Final = f"{GROUP}/approved-revisions"

#: Any non-empty value asks for one backup now; the operator records the value it acted
#: on, so changing the value (a timestamp is customary) asks again.
ANNOTATION_BACKUP_NOW: Final = f"{GROUP}/backup-now"

#: The annotations a user sets to ask for work: a change of one wakes the resource's
#: loop like a change of the spec. Every other annotation is someone's bookkeeping.
USER_ANNOTATIONS: Final = (ANNOTATION_APPROVED_REVISIONS, ANNOTATION_BACKUP_NOW)
