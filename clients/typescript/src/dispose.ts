/**
 * `Symbol.asyncDispose` and `Symbol.dispose` where the platform lacks them
 * (Node.js 20 before 20.4), so that `await using slot = await
 * client.slot(...)`, as TypeScript compiles it, finds the slot's dispose
 * method. They are the symbols later Node.js versions define.
 */

const symbols = Symbol as unknown as Record<string, symbol | undefined>;
for (const name of ["asyncDispose", "dispose"]) {
  if (typeof symbols[name] !== "symbol") {
    Object.defineProperty(Symbol, name, { value: Symbol.for(`nodejs.${name}`) });
  }
}

export {};
