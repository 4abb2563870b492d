// SqlStore: what the scheduler keeps (placements per replica, queues and
// cohorts, node states) and reads per admission cycle (jobs without specs).
#include <algorithm>

#include <nlohmann/json.hpp>

#include "store/sql_store.h"

namespace trainyard::store {

void SqlStore::setPlacements(int64_t job_id, const std::vector<sched::Placement>& placements) {
  transaction([&] {
    db_->prepare("DELETE FROM placements WHERE job_id=?")->bind(1, job_id).step();
    for (const auto& p : placements) {
      auto s = db_->prepare(
          "INSERT INTO placements(job_id, replica, node, cpu_millis, memory_bytes, gpu, gpu_share, gpu_ids) "
          "VALUES(?,?,?,?,?,?,?,?)");
      s->bind(1, job_id).bind(2, p.replica).bind(3, p.node).bind(4, p.held.cpu_millis).bind(5, p.held.memory_bytes);
      s->bind(6, p.held.gpu).bind(7, p.held.gpu_share).bind(8, nlohmann::json(p.gpu_ids).dump());
      s->step();
    }
  });
}

sched::Placement SqlStore::readPlacement(SqlStmt& s, int c) {
  sched::Placement p;
  p.replica = s.text(c);
  p.node = s.text(c + 1);
  p.held.cpu_millis = s.i64(c + 2);
  p.held.memory_bytes = s.i64(c + 3);
  p.held.gpu = static_cast<int>(s.i64(c + 4));
  p.held.gpu_share = static_cast<int>(s.i64(c + 5));
  auto ids = nlohmann::json::parse(s.text(c + 6), nullptr, false);
  if (ids.is_array())
    for (const auto& id : ids)
      if (id.is_number_integer()) p.gpu_ids.push_back(id.get<int>());
  return p;
}

std::vector<sched::Placement> SqlStore::placements(int64_t job_id) {
  auto s = db_->prepare(
      "SELECT replica, node, cpu_millis, memory_bytes, gpu, gpu_share, gpu_ids FROM placements WHERE job_id=? "
      "ORDER BY replica");
  s->bind(1, job_id);
  std::vector<sched::Placement> out;
  while (s->step()) out.push_back(readPlacement(*s, 0));
  return out;
}

std::map<int64_t, std::vector<sched::Placement>> SqlStore::allPlacements() {
  auto s = db_->prepare(
      "SELECT job_id, replica, node, cpu_millis, memory_bytes, gpu, gpu_share, gpu_ids FROM placements "
      "ORDER BY job_id, replica");
  std::map<int64_t, std::vector<sched::Placement>> out;
  while (s->step()) out[s->i64(0)].push_back(readPlacement(*s, 1));
  return out;
}

std::vector<SchedulingRow> SqlStore::schedulingRows() {
  auto s = db_->prepare(
      "SELECT id, name, \"user\", phase, owner, queue, request, message, priority, restarts, created_at, started_at, "
      "cancel_requested, preempt_requested, suspended FROM jobs WHERE phase NOT IN ('Succeeded', 'Failed', 'Stopped') ORDER BY id");
  std::vector<SchedulingRow> out;
  while (s->step()) {
    SchedulingRow r;
    r.id = s->i64(0);
    r.name = s->text(1);
    r.user = s->text(2);
    r.phase = s->text(3);
    r.owner = s->text(4);
    r.queue = s->text(5);
    r.request = s->text(6);
    r.message = s->text(7);
    r.priority = static_cast<int>(s->i64(8));
    r.restarts = static_cast<int>(s->i64(9));
    r.created_at = s->f64(10);
    r.started_at = s->f64(11);
    r.cancel_requested = s->i64(12) != 0;
    r.preempt_requested = s->i64(13) != 0;
    r.suspended = s->i64(14) != 0;
    out.push_back(std::move(r));
  }
  return out;
}

void SqlStore::setJobMessages(const std::vector<std::pair<int64_t, std::string>>& messages) {
  constexpr size_t kChunk = 200;
  for (size_t from = 0; from < messages.size(); from += kChunk) {
    size_t n = std::min(kChunk, messages.size() - from);
    std::string values;
    for (size_t i = 0; i < n; ++i) values += i ? ", (CAST(? AS BIGINT), ?)" : "(CAST(? AS BIGINT), ?)";
    auto s = db_->prepare("WITH v(id, m) AS (VALUES " + values + ") UPDATE jobs SET message = v.m FROM v WHERE jobs.id = v.id");
    for (size_t i = 0; i < n; ++i)
      s->bind(static_cast<int>(2 * i + 1), messages[from + i].first).bind(static_cast<int>(2 * i + 2), messages[from + i].second);
    s->step();
  }
}

void SqlStore::requestPreemption(int64_t job_id) {
  db_->prepare("UPDATE jobs SET preempt_requested=1 WHERE id=?")->bind(1, job_id).step();
}

void SqlStore::putQueue(const spec::QueueDef& q, const std::string& user) {
  auto s = db_->prepare(
      "INSERT INTO queues(kind, name, spec, \"user\", created_at) VALUES(?,?,?,?,?) "
      "ON CONFLICT(kind, name) DO UPDATE SET spec=excluded.spec, \"user\"=excluded.\"user\"");
  s->bind(1, q.kind).bind(2, q.name).bind(3, nlohmann::json(q).dump()).bind(4, user).bind(5, nowSeconds());
  s->step();
}

bool SqlStore::deleteQueue(const std::string& kind, const std::string& name) {
  auto s = db_->prepare("DELETE FROM queues WHERE kind=? AND name=? RETURNING name");
  s->bind(1, kind).bind(2, name);
  return s->step();
}

std::vector<spec::QueueDef> SqlStore::queueDefs() {
  auto s = db_->prepare("SELECT spec FROM queues ORDER BY kind, name");
  std::vector<spec::QueueDef> out;
  while (s->step()) {
    auto j = nlohmann::json::parse(s->text(0), nullptr, false);
    if (!j.is_object()) continue;
    try {
      out.push_back(j.get<spec::QueueDef>());
    } catch (const nlohmann::json::exception&) {
      // A row damaged by hand: left out rather than stopping every admission.
    }
  }
  return out;
}

void SqlStore::renewLease(const std::string& owner, double expires_at) {
  auto s = db_->prepare(
      "INSERT INTO leases(owner, expires_at) VALUES(?,?) ON CONFLICT(owner) DO UPDATE SET expires_at=excluded.expires_at");
  s->bind(1, owner).bind(2, expires_at);
  s->step();
}

std::optional<double> SqlStore::leaseExpiry(const std::string& owner) {
  auto s = db_->prepare("SELECT expires_at FROM leases WHERE owner=?");
  s->bind(1, owner);
  if (!s->step()) return std::nullopt;
  return s->f64(0);
}

void SqlStore::setNodeState(const NodeStateRecord& n) {
  if (n.state == "Ready") {
    db_->prepare("DELETE FROM node_states WHERE name=?")->bind(1, n.name).step();
    return;
  }
  auto s = db_->prepare(
      "INSERT INTO node_states(name, state, reason, time) VALUES(?,?,?,?) "
      "ON CONFLICT(name) DO UPDATE SET state=excluded.state, reason=excluded.reason, time=excluded.time");
  s->bind(1, n.name).bind(2, n.state).bind(3, n.reason).bind(4, n.time);
  s->step();
}

std::vector<NodeStateRecord> SqlStore::nodeStates() {
  auto s = db_->prepare("SELECT name, state, reason, time FROM node_states ORDER BY name");
  std::vector<NodeStateRecord> out;
  while (s->step()) out.push_back({s->text(0), s->text(1), s->text(2), s->f64(3)});
  return out;
}

}  // namespace trainyard::store
