"""From real usage to evals: record and import traffic, redact it, deduplicate, cluster by use
case, and build eval sets with provenance.

Records enter through :func:`ingest` (redaction first, on by default) and live in the store's
``harvest_*`` tables; everything downstream reads them from there.
"""

from ._cluster import NEAR_DUP_THRESHOLD, TEMPLATE_SIMILARITY, cluster_records
from ._importers import FORMATS as IMPORT_FORMATS
from ._importers import ImportResult, detect_format, import_file
from ._ingest import IngestReport, ingest, origin_key
from ._proxy import ProxyServer, create_proxy_app, run_proxy
from ._record import Record, content_hash, from_chat, from_responses
from ._redact import Redactor, make_redactor, regex_finder
from ._topics import Topic, topics

__all__ = [
    "IMPORT_FORMATS",
    "ImportResult",
    "NEAR_DUP_THRESHOLD",
    "TEMPLATE_SIMILARITY",
    "IngestReport",
    "ProxyServer",
    "Record",
    "Redactor",
    "Topic",
    "cluster_records",
    "content_hash",
    "create_proxy_app",
    "detect_format",
    "from_chat",
    "from_responses",
    "import_file",
    "ingest",
    "make_redactor",
    "origin_key",
    "regex_finder",
    "run_proxy",
    "topics",
]
