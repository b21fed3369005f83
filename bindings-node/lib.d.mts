// ESM view of the declarations in lib.d.ts.
import * as lib from './lib.js'
export * from './lib.js'
export default lib
