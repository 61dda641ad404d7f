// pair_style mtp/lowrank: see pair_mtp_lowrank.h and README.md.
//
// The site energies and their derivatives come from mtp::SiteEvaluator (include/mtp/site.hpp),
// the same code pyfit evaluates; forces and virials are assembled exactly as in
// include/mtp/compute.hpp: F_i += g_ij, F_j -= g_ij, virial -= g_ij (x) r_ij, with
// g_ij = dV_i / dr_ij for the owned atom i and every neighbour j (owned or ghost) of the full
// neighbour list within max_dist. Newton pair on: LAMMPS sums the ghost forces back.
#include "pair_mtp_lowrank.h"

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"

#include "mtp/mtp_file.hpp"
#include "mtp/site.hpp"

#include <cmath>
#include <cstring>
#include <limits>

using namespace LAMMPS_NS;

static constexpr int MAX_CLOSE_WARNINGS = 10;

PairMTPLowRank::PairMTPLowRank(LAMMPS *lmp) : Pair(lmp)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  // The per-atom virial is site based (atom i gets -sum_j g_ij (x) r_ij of its own site
  // energy), the decomposition pyfit reports; it is not the centroid form of many-body heat
  // flux, so compute centroid/stress/atom is refused (2 = CENTROID_NOTAVAIL).
  centroidstressflag = 2;
}

PairMTPLowRank::~PairMTPLowRank()
{
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
  }
}

void PairMTPLowRank::allocate()
{
  allocated = 1;
  const int n = atom->ntypes + 1;
  memory->create(setflag, n, n, "pair:setflag");
  memory->create(cutsq, n, n, "pair:cutsq");
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) setflag[i][j] = 0;
  map_.assign(n, -1);
}

/* ---------------------------------------------------------------------- */

void PairMTPLowRank::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);

  double **x = atom->x;
  double **f = atom->f;
  const int *type = atom->type;
  const int inum = list->inum;
  const int *ilist = list->ilist;
  const int *numneigh = list->numneigh;
  int **firstneigh = list->firstneigh;
  const double cut2 = cut_ * cut_;
  const double min2 = min_dist_ * min_dist_;
  const bool vglobal_explicit = vflag_global && !vflag_fdotr;

  bigint nclose = 0;
  double rmin2 = std::numeric_limits<double>::infinity();
  mtp::SiteOutputs<double> so;

  for (int ii = 0; ii < inum; ++ii) {
    const int i = ilist[ii];
    const int zi = map_[type[i]];
    if (zi < 0) continue;
    const double xi = x[i][0], yi = x[i][1], zi_ = x[i][2];
    const int *jlist = firstneigh[i];
    const int jnum = numneigh[i];
    if (static_cast<int>(zj_.size()) < jnum) {
      dr_.resize(3 * static_cast<size_t>(jnum));
      grad_.resize(3 * static_cast<size_t>(jnum));
      zj_.resize(jnum);
      jidx_.resize(jnum);
    }
    int n = 0;
    for (int jj = 0; jj < jnum; ++jj) {
      const int j = jlist[jj] & NEIGHMASK;
      const int zj = map_[type[j]];
      if (zj < 0) continue;
      const double dx = x[j][0] - xi, dy = x[j][1] - yi, dz = x[j][2] - zi_;
      const double rsq = dx * dx + dy * dy + dz * dz;
      if (rsq >= cut2) continue;
      if (rsq < min2) {
        ++nclose;
        rmin2 = std::min(rmin2, rsq);
        if (rsq == 0.0)
          error->one(FLERR, "pair mtp/lowrank: atoms {} and {} are on top of each other "
                     "(distance 0); expected distinct positions", atom->tag[i], atom->tag[j]);
      }
      dr_[3 * n] = dx;
      dr_[3 * n + 1] = dy;
      dr_[3 * n + 2] = dz;
      zj_[n] = zj;
      jidx_[n] = j;
      ++n;
    }
    so.grad = grad_.data();
    const double ei = site_->evaluate(zi, n, dr_.data(), zj_.data(), so);

    double v[6] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    for (int k = 0; k < n; ++k) {
      const double *g = &grad_[3 * k];
      const int j = jidx_[k];
      f[i][0] += g[0];
      f[i][1] += g[1];
      f[i][2] += g[2];
      f[j][0] -= g[0];
      f[j][1] -= g[1];
      f[j][2] -= g[2];
      if (vflag_either) {
        // LAMMPS virial v_ab = sum x_a F_b; this pair: -r_a g_b (xx yy zz xy xz yz)
        const double *r = &dr_[3 * k];
        v[0] -= r[0] * g[0];
        v[1] -= r[1] * g[1];
        v[2] -= r[2] * g[2];
        v[3] -= r[0] * g[1];
        v[4] -= r[0] * g[2];
        v[5] -= r[1] * g[2];
      }
    }
    if (eflag_global) eng_vdwl += ei;
    if (eflag_atom) eatom[i] += ei;
    if (vglobal_explicit)
      for (int c = 0; c < 6; ++c) virial[c] += v[c];
    if (vflag_atom)
      for (int c = 0; c < 6; ++c) vatom[i][c] += v[c];
  }

  if (vflag_fdotr) virial_fdotr_compute();
  report_close_pairs(nclose, rmin2);
}

// Neighbours closer than min_dist: the potential is extrapolating there. Counted on every
// rank, summed over ranks (one small collective per force evaluation); rank 0 warns with the
// count for the first MAX_CLOSE_WARNINGS evaluations that have any, and prints the run total
// in finish().
void PairMTPLowRank::report_close_pairs(bigint nclose_local, double rmin2_local)
{
  bigint nclose = 0;
  MPI_Allreduce(&nclose_local, &nclose, 1, MPI_LMP_BIGINT, MPI_SUM, world);
  if (nclose == 0) return;
  double rmin2 = 0.0;
  MPI_Allreduce(&rmin2_local, &rmin2, 1, MPI_DOUBLE, MPI_MIN, world);
  const double rmin = std::sqrt(rmin2);
  if (close_run_ == 0 || rmin < close_rmin_) close_rmin_ = rmin;
  close_run_ += nclose;
  ++close_evals_;
  if (comm->me == 0 && close_warned_ < MAX_CLOSE_WARNINGS) {
    ++close_warned_;
    error->warning(FLERR,
                   "pair mtp/lowrank: {} neighbour pair(s) closer than min_dist = {} Angstrom "
                   "at step {} (closest {:.6g} Angstrom): the potential is extrapolating{}",
                   nclose / 2, min_dist_, update->ntimestep, rmin,
                   close_warned_ == MAX_CLOSE_WARNINGS
                       ? "; no more of these warnings, the run total is printed at its end"
                       : "");
  }
}

void PairMTPLowRank::finish()
{
  if (close_run_ > 0 && comm->me == 0)
    error->warning(FLERR,
                   "pair mtp/lowrank: in this run {} neighbour pair(s) were closer than "
                   "min_dist = {} Angstrom, in {} force evaluation(s) (closest {:.6g} Angstrom); "
                   "below its training data an MTP is unreliable: a repulsive pair core there "
                   "(pyfit core-table, pair_style hybrid/overlay ... table) keeps runs stable",
                   close_run_ / 2, min_dist_, close_evals_, close_rmin_);
  close_run_ = close_evals_ = 0;
  close_warned_ = 0;
}

/* ---------------------------------------------------------------------- */

void PairMTPLowRank::settings(int narg, char **arg)
{
  species_kw_.clear();
  int iarg = 0;
  while (iarg < narg) {
    if (strcmp(arg[iarg], "species") == 0) {
      ++iarg;
      while (iarg < narg) species_kw_.emplace_back(arg[iarg++]);
      if (species_kw_.empty())
        error->all(FLERR, "pair mtp/lowrank: expected element names after 'species' "
                          "(pair_style mtp/lowrank species El1 El2 ...)");
    } else {
      error->all(FLERR, "pair mtp/lowrank: unknown pair_style keyword '{}'; expected "
                        "'pair_style mtp/lowrank' or 'pair_style mtp/lowrank species El1 El2 ...'",
                 arg[iarg]);
    }
  }
}

void PairMTPLowRank::load_potential(const std::string &path)
{
  // Rank 0 reads the file; every rank parses the same text (errors are then raised on all).
  std::string text, failure;
  if (comm->me == 0) {
    try {
      text = mtp::read_text_file(path);
    } catch (const std::exception &e) {
      failure = e.what();
    }
  }
  long sizes[2] = {static_cast<long>(failure.size()), static_cast<long>(text.size())};
  MPI_Bcast(sizes, 2, MPI_LONG, 0, world);
  if (sizes[0] > 0) {
    failure.resize(sizes[0]);
    MPI_Bcast(&failure[0], static_cast<int>(sizes[0]), MPI_CHAR, 0, world);
    error->all(FLERR, "pair mtp/lowrank: {}", failure);
  }
  text.resize(sizes[1]);
  // broadcast in chunks (MPI counts are int)
  const long chunk = 1L << 30;
  for (long off = 0; off < sizes[1]; off += chunk)
    MPI_Bcast(&text[off], static_cast<int>(std::min(chunk, sizes[1] - off)), MPI_CHAR, 0, world);

  std::unique_ptr<mtp::PotentialFile> pot;
  try {
    pot = std::make_unique<mtp::PotentialFile>(mtp::parse_potential(text, path));
  } catch (const std::exception &e) {
    error->all(FLERR, "pair mtp/lowrank: {}", e.what());
  }
  site_.reset();
  pot_ = std::move(pot);
  site_ = std::make_unique<mtp::SiteEvaluator<double>>(pot_->model);
  path_ = path;
  cut_ = pot_->model.max_dist;
  min_dist_ = pot_->model.min_dist;
}

void PairMTPLowRank::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  const int ntypes = atom->ntypes;
  if (narg < 3 || strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    error->all(FLERR, "pair mtp/lowrank: expected 'pair_coeff * * <potential file> <element>...' "
                      "with {} element(s) (one per atom type)", ntypes);
  if (narg != 3 + ntypes)
    error->all(FLERR, "pair mtp/lowrank: expected {} element name(s) after the potential file "
                      "(one per atom type, NULL to skip a type), found {}", ntypes, narg - 3);

  load_potential(arg[2]);
  const int C = pot_->model.C;
  const std::vector<std::string> &file_names = pot_->species_names;
  if (!file_names.empty() && !species_kw_.empty() && species_kw_ != file_names)
    error->all(FLERR, "pair mtp/lowrank: pair_style species {} disagrees with species_names {} "
                      "of {}; expected the same names (or leave out the pair_style keyword)",
               utils::join_words(species_kw_, " "), utils::join_words(file_names, ", "), path_);
  if (file_names.empty() && !species_kw_.empty() && static_cast<int>(species_kw_.size()) != C)
    error->all(FLERR, "pair mtp/lowrank: pair_style species gives {} name(s) but {} has "
                      "species_count = {}; expected {} names in species order",
               species_kw_.size(), path_, C, C);
  const std::vector<std::string> &names = file_names.empty() ? species_kw_ : file_names;

  for (int t = 1; t <= ntypes; ++t) {
    const std::string el = arg[2 + t];
    int z = -1;
    if (el == "NULL") {
      z = -1;
    } else if (el.find_first_not_of("0123456789") == std::string::npos) {
      z = el.size() > 6 ? C : std::stoi(el);
      if (z >= C)
        error->all(FLERR, "pair mtp/lowrank: species index {} (atom type {}) out of range: {} "
                          "has species_count = {}; expected 0..{}", el, t, path_, C, C - 1);
    } else if (!names.empty()) {
      for (int s = 0; s < static_cast<int>(names.size()); ++s)
        if (names[s] == el) z = s;
      if (z < 0)
        error->all(FLERR, "pair mtp/lowrank: element '{}' (atom type {}) is not in the potential "
                          "{}; its species are {} (or give a 0-based species index, or NULL)",
                   el, t, path_, utils::join_words(names, " "));
    } else {
      error->all(FLERR, "pair mtp/lowrank: element '{}' (atom type {}): {} has no species_names "
                        "(an MLIP .mtp file); expected 0-based species indices 0..{} in "
                        "pair_coeff, or name the species in order with "
                        "'pair_style mtp/lowrank species El1 El2 ...'", el, t, path_, C - 1);
    }
    map_[t] = z;
  }
  int count = 0;
  for (int i = 1; i <= ntypes; ++i)
    for (int j = i; j <= ntypes; ++j) {
      setflag[i][j] = (map_[i] >= 0 && map_[j] >= 0) ? 1 : 0;
      count += setflag[i][j];
    }
  if (count == 0)
    error->all(FLERR, "pair mtp/lowrank: every atom type is NULL; expected at least one element");
}

void PairMTPLowRank::init_style()
{
  if (strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR, "pair mtp/lowrank: requires 'units metal' (eV, Angstrom), found 'units {}'",
               update->unit_style);
  if (force->newton_pair == 0)
    error->all(FLERR, "pair mtp/lowrank: requires 'newton on' (newton pair on), found newton "
                      "pair off");
  if (!pot_) error->all(FLERR, "pair mtp/lowrank: no potential loaded; expected pair_coeff * * "
                                "<file> <elements>");
  neighbor->add_request(this, NeighConst::REQ_FULL);
}

double PairMTPLowRank::init_one(int i, int j)
{
  if (setflag[i][j] == 0) error->all(FLERR, "All pair coeffs are not set");
  return cut_;
}

double PairMTPLowRank::memory_usage()
{
  double bytes = Pair::memory_usage();
  bytes += static_cast<double>(dr_.capacity() + grad_.capacity()) * sizeof(double);
  bytes += static_cast<double>(zj_.capacity() + jidx_.capacity()) * sizeof(int);
  if (pot_) bytes += static_cast<double>(pot_->model.radial.size()) * sizeof(double);
  return bytes;
}
