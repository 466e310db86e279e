// not-yet.mjs: placeholder for commands whose issue has not landed yet.
console.error(`mamakit ${process.argv[2]}: not yet implemented (see the pre-training issue).`);
process.exitCode = 1;
