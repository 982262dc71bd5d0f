// A reader-writer lock that prefers the writer. std::shared_mutex on glibc prefers readers, so a
// steady stream of Range calls could starve the apply thread forever; here a waiting writer
// stops new readers from entering. Not recursive: a thread must not take it shared twice.
#pragma once

#include <pthread.h>

#include "base/check.h"

namespace dolmen::mvcc {

class RwLock {
 public:
  RwLock() {
    pthread_rwlockattr_t attr;
    CHECK_EQ(pthread_rwlockattr_init(&attr), 0);
    CHECK_EQ(pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP), 0);
    CHECK_EQ(pthread_rwlock_init(&lock_, &attr), 0);
    pthread_rwlockattr_destroy(&attr);
  }
  ~RwLock() { pthread_rwlock_destroy(&lock_); }
  RwLock(const RwLock&) = delete;
  RwLock& operator=(const RwLock&) = delete;

  // The Lockable / SharedLockable names, so std::unique_lock and std::shared_lock work.
  void lock() { CHECK_EQ(pthread_rwlock_wrlock(&lock_), 0); }
  void unlock() { CHECK_EQ(pthread_rwlock_unlock(&lock_), 0); }
  void lock_shared() { CHECK_EQ(pthread_rwlock_rdlock(&lock_), 0); }
  void unlock_shared() { CHECK_EQ(pthread_rwlock_unlock(&lock_), 0); }

 private:
  pthread_rwlock_t lock_;
};

}  // namespace dolmen::mvcc
