"""Published data that ships with Taomi (see README.md here for source, commit, sha256, citation)."""

from pathlib import Path

# Epoch AI's 245 (N, C, loss) points extracted from Hoffmann et al. 2022, Figure 4.
CHINCHILLA_POINTS = Path(__file__).with_name("chinchilla_svg_extracted.csv")
