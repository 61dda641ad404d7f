// pair_style mtp/lowrank: Moment Tensor Potentials for LAMMPS, evaluated with pyfit's kernel.
//
//   pair_style mtp/lowrank [species El1 El2 ...]
//   pair_coeff * * pot.file El1|index|NULL ...   (one entry per atom type)
//
// See lammps_plugin/README.md for the rules.
#ifndef LMP_PAIR_MTP_LOWRANK_H
#define LMP_PAIR_MTP_LOWRANK_H

#include "pair.h"

#include <memory>
#include <string>
#include <vector>

namespace mtp {
struct PotentialFile;
template <class T> class SiteEvaluator;
}    // namespace mtp

namespace LAMMPS_NS {

class PairMTPLowRank : public Pair {
 public:
  PairMTPLowRank(class LAMMPS *);
  ~PairMTPLowRank() override;

  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;
  void finish() override;
  double memory_usage() override;

 protected:
  void allocate();
  void load_potential(const std::string &path);
  void report_close_pairs(bigint nclose_local, double rmin_local);

  std::unique_ptr<mtp::PotentialFile> pot_;
  std::unique_ptr<mtp::SiteEvaluator<double>> site_;
  std::string path_;
  std::vector<std::string> species_kw_;    // pair_style ... species El1 El2 ...
  std::vector<int> map_;                   // LAMMPS type (1..ntypes) -> species, -1 = NULL
  double cut_ = 0.0, min_dist_ = 0.0;

  // per-site buffers, reused
  std::vector<double> dr_, grad_;
  std::vector<int> zj_, jidx_;

  // neighbours closer than min_dist (global counts, identical on every rank)
  bigint close_run_ = 0;     // directed pairs (i, j) counted this run
  bigint close_evals_ = 0;   // force evaluations with at least one close pair
  double close_rmin_ = 0.0;  // closest distance seen this run
  int close_warned_ = 0;     // warnings printed
};

}    // namespace LAMMPS_NS

#endif
