#include "wal/wal.h"

#include <algorithm>
#include <chrono>

#include "metrics/metrics.h"
#include "wal/log_builder.h"
#include "wal/payload.h"
#include "wal/record.h"
#include "wal/segment.h"

namespace dolmen::wal {
namespace {

// etcd_disk_wal_fsync_duration_seconds (etcd: wal/metrics.go): every sync of a segment that
// makes appended records durable.
metrics::Histogram& FsyncSeconds() {
  static metrics::Histogram& m = metrics::DefaultRegistry().AddHistogram(
      "etcd_disk_wal_fsync_duration_seconds", "The latency distributions of fsync called by WAL.",
      metrics::ExponentialBuckets(0.001, 2, 14));
  return m;
}

Status TimedSync(io::WritableFile* file) {
  const auto start = std::chrono::steady_clock::now();
  Status s = file->Sync();
  FsyncSeconds().Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return s;
}

// Held for the Wal's lifetime: a second process (or a second Wal in this one) on the same
// directory would interleave segments.
constexpr char kLockName[] = "wal.lock";
constexpr char kTempSuffix[] = ".tmp";

bool IsTemporary(const std::string& name) {
  return name.size() > 4 && name.ends_with(std::string(".wal") + kTempSuffix);
}

// A crash while a segment was being written leaves "<name>.tmp": never renamed into place, so
// never part of the log.
Status RemoveTemporaries(io::FileSystem* fs, const std::string& dir,
                         const std::vector<std::string>& names) {
  for (const auto& name : names) {
    if (IsTemporary(name)) RETURN_IF_ERROR(fs->Remove(io::JoinPath(dir, name)));
  }
  return OkStatus();
}

Status RecordCorruption(const std::string& path, uint64_t offset, const std::string& what) {
  return Corruption("wal segment " + path + " offset " + std::to_string(offset) + ": " + what);
}

}  // namespace

void RegisterWalMetrics() { FsyncSeconds(); }

Wal::Wal(io::FileSystem* fs, std::string dir, std::string metadata, const Options& options)
    : fs_(fs), dir_(std::move(dir)), metadata_(std::move(metadata)), options_(options) {}

Wal::~Wal() {
  if (file_) file_->Close().IgnoreError();
}

bool Wal::Exists(io::FileSystem* fs, const std::string& dir) {
  auto names = fs->ListDir(dir);
  if (!names.ok()) return false;
  return std::any_of(names->begin(), names->end(),
                     [](const std::string& n) { return ParseSegmentName(n).has_value(); });
}

Result<std::unique_ptr<Wal>> Wal::Create(io::FileSystem* fs, const std::string& dir,
                                         std::string metadata, const Options& options) {
  if (options.segment_bytes == 0) return InvalidArgument("wal: segment_bytes must be positive");
  RETURN_IF_ERROR(fs->CreateDirs(dir));
  // The directory's own entry must survive a crash too.
  RETURN_IF_ERROR(fs->SyncDir(io::DirName(dir)));
  std::unique_ptr<Wal> wal(new Wal(fs, dir, std::move(metadata), options));
  ASSIGN_OR_RETURN(wal->lock_, fs->LockFile(io::JoinPath(dir, kLockName)));
  if (Exists(fs, dir)) return Status(Code::kAlreadyExists, "wal: a log already exists in " + dir);
  ASSIGN_OR_RETURN(auto names, fs->ListDir(dir));
  RETURN_IF_ERROR(RemoveTemporaries(fs, dir, names));
  RETURN_IF_ERROR(wal->StartSegment(0, 1));
  return wal;
}

Result<std::pair<std::unique_ptr<Wal>, Recovered>> Wal::Open(io::FileSystem* fs,
                                                             const std::string& dir,
                                                             const Options& options) {
  if (options.segment_bytes == 0) return InvalidArgument("wal: segment_bytes must be positive");
  std::unique_ptr<Wal> wal(new Wal(fs, dir, "", options));
  ASSIGN_OR_RETURN(wal->lock_, fs->LockFile(io::JoinPath(dir, kLockName)));
  ASSIGN_OR_RETURN(auto names, fs->ListDir(dir));
  RETURN_IF_ERROR(RemoveTemporaries(fs, dir, names));

  std::vector<Segment> segments;
  for (const auto& name : names) {
    if (auto parsed = ParseSegmentName(name)) {
      segments.push_back(Segment{parsed->sequence, parsed->first_index, name});
    }
  }
  if (segments.empty()) return NotFound("wal: no segments in " + dir);
  std::sort(segments.begin(), segments.end(),
            [](const Segment& a, const Segment& b) { return a.sequence < b.sequence; });
  for (size_t i = 1; i < segments.size(); ++i) {
    if (segments[i].sequence != segments[i - 1].sequence + 1) {
      return Corruption("wal: segment missing between " + segments[i - 1].name + " and " +
                        segments[i].name + " in " + dir);
    }
  }

  LogBuilder builder;
  std::optional<std::string> metadata;
  Recovered recovered;
  std::optional<uint64_t> cut_at;  // where to cut the last segment
  bool must_sync = false;          // a torn tail was cut: make that durable before appending
  for (size_t i = 0; i < segments.size(); ++i) {
    const Segment& segment = segments[i];
    bool is_last = i + 1 == segments.size();
    std::string path = io::JoinPath(dir, segment.name);
    ASSIGN_OR_RETURN(std::string data, fs->ReadFile(path));
    ASSIGN_OR_RETURN(SegmentScan scan, ScanSegment(data, path, is_last));
    if (scan.header.sequence != segment.sequence ||
        scan.header.first_index != segment.first_index) {
      return RecordCorruption(path, 0, "header does not match the file name");
    }
    // A later segment starts where the log stood when it was cut. (Checkable only while the
    // rebuilt log holds entries: after a release the writer's log head may be gone.)
    if (i > 0 && !builder.entries().empty() &&
        builder.LastIndex().value() + 1 != segment.first_index) {
      return RecordCorruption(path, 0,
                              "segment starts at index " + std::to_string(segment.first_index) +
                                  " but the log before it ends at " +
                                  std::to_string(builder.LastIndex().value()));
    }
    if (scan.records.empty() || scan.records.front().type != RecordType::kMetadata) {
      return RecordCorruption(path, kSegmentHeaderBytes,
                              "segment does not start with a metadata record");
    }
    for (const RawRecord& record : scan.records) {
      RETURN_IF_ERROR(ApplyRecord(record, path, &builder, &metadata));
    }
    if (is_last && scan.tail != SegmentScan::Tail::kClean) {
      uint64_t dropped = data.size() - scan.valid_end;
      if (scan.tail == SegmentScan::Tail::kTorn) {
        recovered.repairs.push_back("wal segment " + path + ": " + scan.tail_note + " at offset " +
                                    std::to_string(scan.valid_end) + " (torn write); truncated " +
                                    std::to_string(dropped) + " bytes");
        must_sync = true;
      }
      // Zeros are the preallocated space (or space a crash extended but never filled): not a
      // repair, and nothing synced is lost. They are cut so that appends continue at the end
      // of the records; the segment is preallocated again below.
      cut_at = scan.valid_end;
    }
  }
  RETURN_IF_ERROR(builder.Finish(/*head_released=*/segments.front().sequence > 0));
  // Only a log that reads back whole is modified.
  std::string last_path = io::JoinPath(dir, segments.back().name);
  if (cut_at) RETURN_IF_ERROR(fs->Truncate(last_path, *cut_at));

  wal->metadata_ = *metadata;  // the first segment's first record is metadata (checked)
  wal->segments_ = std::move(segments);
  wal->last_index_ = builder.LastIndex();
  if (builder.entries().empty()) {
    // Every entry still on disk was released or covered: the last segment's name still says
    // where the log stood when it was started. An overestimate is harmless (it only loosens
    // the gap check and raises the next segment's first index); an underestimate would break
    // ReleaseTo's reasoning.
    wal->last_index_ = std::max(wal->last_index_, Index(wal->segments_.back().first_index - 1));
  }
  wal->hard_state_ = builder.hard_state();
  wal->snapshot_ = builder.snapshot();
  ASSIGN_OR_RETURN(wal->file_, fs->OpenForAppend(last_path));
  // Make a repair durable before anything is appended after it.
  if (must_sync) RETURN_IF_ERROR(wal->file_->Sync());
  // The space the zeros held (cut above) is reserved again. Failing here, on a full disk, is
  // better than failing on an append once the member serves (docs/wal.md).
  if (Status s = wal->file_->Preallocate(options.segment_bytes); !s.ok()) {
    return Status(s.code(), "wal: reserving " + std::to_string(options.segment_bytes) +
                                " bytes for segment " + last_path + ": " + s.message());
  }

  recovered.metadata = std::move(*metadata);
  recovered.hard_state = builder.hard_state();
  recovered.snapshot = builder.snapshot();
  recovered.entries = builder.TakeEntries();
  return std::make_pair(std::move(wal), std::move(recovered));
}

Status Wal::StartSegment(uint64_t sequence, uint64_t first_index) {
  std::string name = SegmentName(sequence, first_index);
  std::string path = io::JoinPath(dir_, name);
  std::string temp = path + kTempSuffix;
  if (fs_->Exists(temp)) RETURN_IF_ERROR(fs_->Remove(temp));
  ASSIGN_OR_RETURN(auto file, fs_->OpenForAppend(temp));
  // The whole segment's space is reserved up front, so appends inside it cannot run out of
  // space; a file system without fallocate answers ok (io::WritableFile::Preallocate). A real
  // failure (ENOSPC) fails the cut: appending into an unreserved segment would only meet the
  // same full disk later, in the middle of a record.
  if (Status s = file->Preallocate(options_.segment_bytes); !s.ok()) {
    file->Close().IgnoreError();
    fs_->Remove(temp).IgnoreError();  // give the partial reservation back; Open removes it too
    return Status(s.code(), "wal: reserving " + std::to_string(options_.segment_bytes) +
                                " bytes for segment " + path + ": " + s.message());
  }

  // Every segment repeats the metadata and the latest state, so releasing older segments never
  // loses them.
  buffer_.clear();
  EncodeSegmentHeader(SegmentHeader{sequence, first_index}, &buffer_);
  EncodeRecord(RecordType::kMetadata, metadata_, &buffer_);
  std::string payload;
  if (!hard_state_.IsEmpty()) {
    EncodeHardState(hard_state_, &payload);
    EncodeRecord(RecordType::kHardState, payload, &buffer_);
  }
  if (snapshot_) {
    payload.clear();
    EncodeSnapshot(*snapshot_, &payload);
    EncodeRecord(RecordType::kSnapshot, payload, &buffer_);
  }
  RETURN_IF_ERROR(file->Append(buffer_));
  RETURN_IF_ERROR(file->Sync());
  RETURN_IF_ERROR(fs_->Rename(temp, path));
  RETURN_IF_ERROR(fs_->SyncDir(dir_));
  file_ = std::move(file);
  segments_.push_back(Segment{sequence, first_index, name});
  return OkStatus();
}

Status Wal::CutIfFull() { return CutIfAtLeast(options_.segment_bytes); }

Status Wal::CutIfAtLeast(uint64_t bytes) {
  if (!failed_.ok()) return failed_;
  CHECK(file_ != nullptr) << "wal: cut after Close";
  if (file_->Size() < bytes) return OkStatus();
  // The old segment must be complete on disk before a newer one can exist: the reader treats
  // damage in any segment but the last as corruption, and zeros after the records as damage
  // too (only the last segment may keep its preallocated tail).
  if (Status s = file_->TrimPreallocation(); !s.ok()) return Fail(s);
  if (Status s = TimedSync(file_.get()); !s.ok()) return Fail(s);
  if (Status s = file_->Close(); !s.ok()) return Fail(s);
  file_.reset();
  if (Status s = StartSegment(segments_.back().sequence + 1, last_index_.value() + 1); !s.ok()) {
    return Fail(s);
  }
  return OkStatus();
}

Status Wal::Write(const std::string& bytes) {
  if (Status s = file_->Append(bytes); !s.ok()) return Fail(s);
  return OkStatus();
}

Status Wal::Fail(Status status) {
  if (failed_.ok()) {
    failed_ = Status(status.code(), "wal unusable after an earlier failure: " + status.message());
  }
  return status;
}

void Wal::CheckAppendable(const std::vector<raft::Entry>& entries) const {
  if (entries.empty()) return;
  uint64_t first = entries.front().index.value();
  CHECK_GT(first, 0u) << "wal: entry index 0";
  for (size_t i = 1; i < entries.size(); ++i) {
    CHECK_EQ(entries[i].index.value(), entries[i - 1].index.value() + 1)
        << "wal: entries in one Append must have consecutive indexes";
  }
  if (snapshot_) {
    CHECK_GT(first, snapshot_->index.value()) << "wal: append at or below the snapshot index";
  }
  // With neither entries nor a snapshot the log may start anywhere; otherwise no gaps.
  if (last_index_.value() > 0) {
    CHECK_LE(first, last_index_.value() + 1) << "wal: append leaves a gap in the log";
  }
}

Status Wal::Append(const std::vector<raft::Entry>& entries, const raft::HardState& hs) {
  if (!failed_.ok()) return failed_;
  CHECK(file_ != nullptr) << "wal: Append after Close";
  for (const auto& entry : entries) {
    if (entry.data.size() > kMaxRecordPayloadBytes - 64) {
      return InvalidArgument("wal: entry " + std::to_string(entry.index.value()) + " of " +
                             std::to_string(entry.data.size()) + " bytes is too large");
    }
  }
  CheckAppendable(entries);
  buffer_.clear();
  std::string payload;
  for (const auto& entry : entries) {
    payload.clear();
    EncodeEntry(entry, &payload);
    EncodeRecord(RecordType::kEntry, payload, &buffer_);
  }
  if (!hs.IsEmpty()) {
    payload.clear();
    EncodeHardState(hs, &payload);
    EncodeRecord(RecordType::kHardState, payload, &buffer_);
  }
  if (buffer_.empty()) return OkStatus();
  RETURN_IF_ERROR(Write(buffer_));
  if (!entries.empty()) last_index_ = entries.back().index;
  if (!hs.IsEmpty()) hard_state_ = hs;
  return CutIfFull();
}

Status Wal::Sync() {
  if (!failed_.ok()) return failed_;
  CHECK(file_ != nullptr) << "wal: Sync after Close";
  if (Status s = TimedSync(file_.get()); !s.ok()) return Fail(s);
  return OkStatus();
}

Status Wal::SaveSnapshot(const raft::SnapshotMetadata& meta) {
  if (!failed_.ok()) return failed_;
  CHECK(file_ != nullptr) << "wal: SaveSnapshot after Close";
  if (snapshot_) {
    CHECK_GE(meta.index.value(), snapshot_->index.value()) << "wal: snapshot index went back";
  }
  buffer_.clear();
  std::string payload;
  EncodeSnapshot(meta, &payload);
  EncodeRecord(RecordType::kSnapshot, payload, &buffer_);
  RETURN_IF_ERROR(Write(buffer_));
  snapshot_ = meta;
  last_index_ = std::max(last_index_, meta.index);
  RETURN_IF_ERROR(Sync());
  return CutIfFull();
}

Status Wal::ReleaseTo(Index index) {
  if (!failed_.ok()) return failed_;
  uint64_t limit = index.value();
  // At the start of segment k the log ended at first_index-1, so every entry that survives
  // with an index >= first_index was written in segment k or later: all segments before the
  // last k with first_index <= limit hold only entries below limit (or overwritten ones).
  size_t keep_from = 0;
  for (size_t k = 1; k < segments_.size(); ++k) {
    if (segments_[k].first_index <= limit) keep_from = k;
  }
  if (keep_from == 0) return OkStatus();
  for (size_t k = 0; k < keep_from; ++k) {
    Status s = fs_->Remove(io::JoinPath(dir_, segments_[k].name));
    if (!s.ok() && s.code() != Code::kNotFound) {
      // Keep the segments list a suffix of what is on disk; the rest goes next time.
      segments_.erase(segments_.begin(), segments_.begin() + static_cast<ptrdiff_t>(k));
      return s;
    }
  }
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<ptrdiff_t>(keep_from));
  return fs_->SyncDir(dir_);
}

Status Wal::Close() {
  if (!failed_.ok()) return failed_;
  if (!file_) return OkStatus();
  Status s = Sync();
  Status c = file_->Close();
  file_.reset();
  failed_ = Status(Code::kFailedPrecondition, "wal is closed");
  RETURN_IF_ERROR(s);
  return c;
}

std::vector<std::string> Wal::SegmentNames() const {
  std::vector<std::string> names;
  for (const auto& s : segments_) names.push_back(s.name);
  return names;
}

}  // namespace dolmen::wal
