# Cython looks up the .pxd of module "pyk._native" as pyk/_native.pxd under the source's
# root directory (ext/); the declarations themselves live in ext/_native.pxd.
include "../_native.pxd"
