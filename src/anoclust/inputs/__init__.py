"""From what the user points at (folders, CSV lists, an MVTec category) to decoded images.

listing.py lists the images to cluster with their labels, masks and normal references (an
ImageSet) without opening any; decode.py turns one file into a float array, or a clear reason
why it cannot.
"""

from .listing import LAYOUTS, ImageSet, find_images, read_input, read_path_list

__all__ = ["LAYOUTS", "ImageSet", "find_images", "read_input", "read_path_list"]
