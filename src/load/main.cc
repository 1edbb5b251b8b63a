// genledger-load: load generator and ledger checker for genledger (docs/load.md).
#include "load/load.h"

int main(int argc, char** argv) { return genledger::load::LoadMain(argc, argv); }
