"""Data sets as in-memory uint8 tensors: MNIST / Fashion-MNIST, face images (folders, CelebA)."""
