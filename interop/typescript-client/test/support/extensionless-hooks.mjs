// Module hooks (registered by tutorial-env.mjs): a relative import without
// an extension that node cannot find is tried again with ".js".
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (err) {
    const relative = specifier.startsWith("./") || specifier.startsWith("../");
    if (err?.code === "ERR_MODULE_NOT_FOUND" && relative && !/\.[cm]?[jt]s$/.test(specifier)) {
      return next(`${specifier}.js`, context);
    }
    throw err;
  }
}
