"""Medical imaging I/O: uploads (DICOM, NIfTI, PNG/JPG/TIFF) to the canonical image form, slice
rendering with window/level, and label-map exports (NIfTI, PNG, DICOM SEG, zip).

Plain functions without web or database code; the API routes call them:
``importer.import_uploads``, ``render.render_slice_png``, ``export.to_nifti_bytes`` /
``to_png_bytes`` / ``to_dicom_seg_bytes`` / ``zip_bytes``; ``canonical`` holds CanonicalImage
and ImportLimits, ``errors`` the exceptions. Internals: ``sniff`` (magic bytes), ``safe_zip``,
``dicom_import``, ``nifti_io``, ``raster_io``.
"""
