export { Accounts, type AccountsOptions, type AccountState, type AccountStreams } from './accounts.js';
export { accountGroup, membersGroup, membershipStream, memberStream, markerStream, targetKey, successorId, type ReadTarget } from './names.js';
