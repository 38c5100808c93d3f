"""Data package: the default accelerator bundle (bundles/default) shipped with snapseal."""
