"""The demo inspection task and the procedural renderer it and the demo CLIP's pretraining draw from."""
