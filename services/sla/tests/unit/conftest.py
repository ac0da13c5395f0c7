"""Make this folder's helper modules (`sla_stories`) importable by its test modules."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
