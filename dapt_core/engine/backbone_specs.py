"""How a backbone is named (`--backbone`, the Tune page), free of torch so the command line's help and the app's
pages can spell a spec without loading open_clip: "demo", "NAME:TAG", "NAME:/path/to/weights" or
"local-dir:/path" (engine/backbone.py loads each)."""

from __future__ import annotations

DEMO = "demo"  # the project's own small CLIP in assets/demo_clip (works offline)
# open_clip's own scheme for a folder holding open_clip_config.json and the weights.
LOCAL_DIR_PREFIX = "local-dir:"
