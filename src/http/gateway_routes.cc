#include "http/gateway_routes.h"

#include "etcdserverpb/rpc.pb.h"
#include "v3electionpb/v3election.pb.h"
#include "v3lockpb/v3lock.pb.h"

namespace dolmen::http::gateway {
namespace {

using K = CallKind;

#define EP(name) &etcdserverpb::name::descriptor
// In etcd's order: where two methods share a path (Hash and HashKV on /v3/maintenance/hash),
// grpc-gateway serves the first registered, Hash, and so do we.
const Route kRoutes[] = {
    {"/v3/kv/range", "/etcdserverpb.KV/Range", EP(RangeRequest), EP(RangeResponse), K::kUnary},
    {"/v3/kv/put", "/etcdserverpb.KV/Put", EP(PutRequest), EP(PutResponse), K::kUnary},
    {"/v3/kv/deleterange", "/etcdserverpb.KV/DeleteRange", EP(DeleteRangeRequest),
     EP(DeleteRangeResponse), K::kUnary},
    {"/v3/kv/txn", "/etcdserverpb.KV/Txn", EP(TxnRequest), EP(TxnResponse), K::kUnary},
    {"/v3/kv/compaction", "/etcdserverpb.KV/Compact", EP(CompactionRequest), EP(CompactionResponse),
     K::kUnary},
    {"/v3/watch", "/etcdserverpb.Watch/Watch", EP(WatchRequest), EP(WatchResponse), K::kBidiStream},
    {"/v3/lease/grant", "/etcdserverpb.Lease/LeaseGrant", EP(LeaseGrantRequest),
     EP(LeaseGrantResponse), K::kUnary},
    {"/v3/lease/revoke", "/etcdserverpb.Lease/LeaseRevoke", EP(LeaseRevokeRequest),
     EP(LeaseRevokeResponse), K::kUnary},
    {"/v3/kv/lease/revoke", "/etcdserverpb.Lease/LeaseRevoke", EP(LeaseRevokeRequest),
     EP(LeaseRevokeResponse), K::kUnary},
    {"/v3/lease/keepalive", "/etcdserverpb.Lease/LeaseKeepAlive", EP(LeaseKeepAliveRequest),
     EP(LeaseKeepAliveResponse), K::kBidiStream},
    {"/v3/lease/timetolive", "/etcdserverpb.Lease/LeaseTimeToLive", EP(LeaseTimeToLiveRequest),
     EP(LeaseTimeToLiveResponse), K::kUnary},
    {"/v3/kv/lease/timetolive", "/etcdserverpb.Lease/LeaseTimeToLive", EP(LeaseTimeToLiveRequest),
     EP(LeaseTimeToLiveResponse), K::kUnary},
    {"/v3/lease/leases", "/etcdserverpb.Lease/LeaseLeases", EP(LeaseLeasesRequest),
     EP(LeaseLeasesResponse), K::kUnary},
    {"/v3/kv/lease/leases", "/etcdserverpb.Lease/LeaseLeases", EP(LeaseLeasesRequest),
     EP(LeaseLeasesResponse), K::kUnary},
    {"/v3/cluster/member/add", "/etcdserverpb.Cluster/MemberAdd", EP(MemberAddRequest),
     EP(MemberAddResponse), K::kUnary},
    {"/v3/cluster/member/remove", "/etcdserverpb.Cluster/MemberRemove", EP(MemberRemoveRequest),
     EP(MemberRemoveResponse), K::kUnary},
    {"/v3/cluster/member/update", "/etcdserverpb.Cluster/MemberUpdate", EP(MemberUpdateRequest),
     EP(MemberUpdateResponse), K::kUnary},
    {"/v3/cluster/member/list", "/etcdserverpb.Cluster/MemberList", EP(MemberListRequest),
     EP(MemberListResponse), K::kUnary},
    {"/v3/cluster/member/promote", "/etcdserverpb.Cluster/MemberPromote", EP(MemberPromoteRequest),
     EP(MemberPromoteResponse), K::kUnary},
    {"/v3/maintenance/alarm", "/etcdserverpb.Maintenance/Alarm", EP(AlarmRequest),
     EP(AlarmResponse), K::kUnary},
    {"/v3/maintenance/status", "/etcdserverpb.Maintenance/Status", EP(StatusRequest),
     EP(StatusResponse), K::kUnary},
    {"/v3/maintenance/defragment", "/etcdserverpb.Maintenance/Defragment", EP(DefragmentRequest),
     EP(DefragmentResponse), K::kUnary},
    {"/v3/maintenance/hash", "/etcdserverpb.Maintenance/Hash", EP(HashRequest), EP(HashResponse),
     K::kUnary},
    {"/v3/maintenance/snapshot", "/etcdserverpb.Maintenance/Snapshot", EP(SnapshotRequest),
     EP(SnapshotResponse), K::kServerStream},
    {"/v3/maintenance/transfer-leadership", "/etcdserverpb.Maintenance/MoveLeader",
     EP(MoveLeaderRequest), EP(MoveLeaderResponse), K::kUnary},
    {"/v3/auth/enable", "/etcdserverpb.Auth/AuthEnable", EP(AuthEnableRequest),
     EP(AuthEnableResponse), K::kUnary},
    {"/v3/auth/disable", "/etcdserverpb.Auth/AuthDisable", EP(AuthDisableRequest),
     EP(AuthDisableResponse), K::kUnary},
    {"/v3/auth/authenticate", "/etcdserverpb.Auth/Authenticate", EP(AuthenticateRequest),
     EP(AuthenticateResponse), K::kUnary},
    {"/v3/auth/user/add", "/etcdserverpb.Auth/UserAdd", EP(AuthUserAddRequest),
     EP(AuthUserAddResponse), K::kUnary},
    {"/v3/auth/user/get", "/etcdserverpb.Auth/UserGet", EP(AuthUserGetRequest),
     EP(AuthUserGetResponse), K::kUnary},
    {"/v3/auth/user/list", "/etcdserverpb.Auth/UserList", EP(AuthUserListRequest),
     EP(AuthUserListResponse), K::kUnary},
    {"/v3/auth/user/delete", "/etcdserverpb.Auth/UserDelete", EP(AuthUserDeleteRequest),
     EP(AuthUserDeleteResponse), K::kUnary},
    {"/v3/auth/user/changepw", "/etcdserverpb.Auth/UserChangePassword",
     EP(AuthUserChangePasswordRequest), EP(AuthUserChangePasswordResponse), K::kUnary},
    {"/v3/auth/user/grant", "/etcdserverpb.Auth/UserGrantRole", EP(AuthUserGrantRoleRequest),
     EP(AuthUserGrantRoleResponse), K::kUnary},
    {"/v3/auth/user/revoke", "/etcdserverpb.Auth/UserRevokeRole", EP(AuthUserRevokeRoleRequest),
     EP(AuthUserRevokeRoleResponse), K::kUnary},
    {"/v3/auth/role/add", "/etcdserverpb.Auth/RoleAdd", EP(AuthRoleAddRequest),
     EP(AuthRoleAddResponse), K::kUnary},
    {"/v3/auth/role/get", "/etcdserverpb.Auth/RoleGet", EP(AuthRoleGetRequest),
     EP(AuthRoleGetResponse), K::kUnary},
    {"/v3/auth/role/list", "/etcdserverpb.Auth/RoleList", EP(AuthRoleListRequest),
     EP(AuthRoleListResponse), K::kUnary},
    {"/v3/auth/role/delete", "/etcdserverpb.Auth/RoleDelete", EP(AuthRoleDeleteRequest),
     EP(AuthRoleDeleteResponse), K::kUnary},
    {"/v3/auth/role/grant", "/etcdserverpb.Auth/RoleGrantPermission",
     EP(AuthRoleGrantPermissionRequest), EP(AuthRoleGrantPermissionResponse), K::kUnary},
    {"/v3/auth/role/revoke", "/etcdserverpb.Auth/RoleRevokePermission",
     EP(AuthRoleRevokePermissionRequest), EP(AuthRoleRevokePermissionResponse), K::kUnary},
    {"/v3/lock/lock", "/v3lockpb.Lock/Lock", &v3lockpb::LockRequest::descriptor,
     &v3lockpb::LockResponse::descriptor, K::kUnary},
    {"/v3/lock/unlock", "/v3lockpb.Lock/Unlock", &v3lockpb::UnlockRequest::descriptor,
     &v3lockpb::UnlockResponse::descriptor, K::kUnary},
    {"/v3/election/campaign", "/v3electionpb.Election/Campaign",
     &v3electionpb::CampaignRequest::descriptor, &v3electionpb::CampaignResponse::descriptor,
     K::kUnary},
    {"/v3/election/proclaim", "/v3electionpb.Election/Proclaim",
     &v3electionpb::ProclaimRequest::descriptor, &v3electionpb::ProclaimResponse::descriptor,
     K::kUnary},
    {"/v3/election/leader", "/v3electionpb.Election/Leader",
     &v3electionpb::LeaderRequest::descriptor, &v3electionpb::LeaderResponse::descriptor,
     K::kUnary},
    {"/v3/election/observe", "/v3electionpb.Election/Observe",
     &v3electionpb::LeaderRequest::descriptor, &v3electionpb::LeaderResponse::descriptor,
     K::kServerStream},
    {"/v3/election/resign", "/v3electionpb.Election/Resign",
     &v3electionpb::ResignRequest::descriptor, &v3electionpb::ResignResponse::descriptor,
     K::kUnary},
};
#undef EP

}  // namespace

const Route* FindRoute(std::string_view path) {
  for (const Route& r : kRoutes) {
    if (path == r.path) return &r;
  }
  return nullptr;
}

const Route* AllRoutes(size_t* count) {
  *count = sizeof kRoutes / sizeof kRoutes[0];
  return kRoutes;
}

}  // namespace dolmen::http::gateway
