"""Training wiring: Lightning datamodules (scenes -> voxelised batches), transforms,
self-training, and the LightningCLI with the data side's facts linked into the model."""
