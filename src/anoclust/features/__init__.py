"""From images to patch bags: the backbone's feature taps (backbones.py), their aggregation into
one vector per patch (aggregate.py), the batched extraction (extract.py) and the on-disk cache
of bags (cache.py)."""
