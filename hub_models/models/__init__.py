"""The project's own model plugins, one file each.

They are registered as entry points in pyproject.toml like any third-party plugin. ``BUILTIN_MODELS`` is the same
table (a test keeps the two equal) for a plain source checkout that was never pip-installed, where no entry-point
metadata exists: the Hugging Face Spaces builder installs requirements.txt and then runs ``demo/app.py`` from the
copied repository, and the demo must still find every model.
"""

BUILTIN_MODELS: dict[str, str] = {
    "gan-toy2d": "hub_models.models.toy2d:GanToy2D",
    "gan-ring8": "hub_models.models.toy2d:GanRing8",
    "cgan-digits": "hub_models.models.cgan_digits:CganDigits",
    "dcgan-faces": "hub_models.models.dcgan_faces:DcganFaces",
    "convgan-faces128": "hub_models.models.convgan_faces128:ConvganFaces128",
    "cgan-digits-mlp": "hub_models.models.cgan_digits_mlp:CganDigitsMlp",
    "gan-digits-mlp": "hub_models.models.gan_digits_mlp:GanDigitsMlp",
    "vae-digits": "hub_models.models.vae_digits:VaeDigits",
}
