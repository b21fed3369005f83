module.exports = {}; module.exports.default = module.exports;
