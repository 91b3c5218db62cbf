// download.cpp: a BITS download written the way Microsoft's documentation writes one,
// in C++ with method calls and __uuidof.
//
//   download_cpp URL DESTINATION
//
// Apart from its include lines, this program is Windows source: it is built with
// -fshort-wchar (as Wine builds Windows code), so its L"..." literals are 16-bit WCHAR
// strings. The only other edits are the ones glibc forces, each marked "glibc:"
// (main instead of wmain, and no wprintf for 16-bit strings).
//
// Build: c++ -std=c++17 -fshort-wchar download.cpp -I../include -L../target/debug -lqmgr

// Windows: #include <windows.h> and <bits.h>
#include <bits.h>
#include <stdio.h>
#include "win32_compat.h"

// Polls the job until it is transferred or has failed, then completes or cancels it.
HRESULT MonitorJob(IBackgroundCopyJob* pJob)
{
    HRESULT hr;
    BG_JOB_STATE State;
    BG_JOB_PROGRESS Progress;
    IBackgroundCopyError* pError = NULL;
    LPWSTR pszDescription = NULL;

    for (;;)
    {
        hr = pJob->GetState(&State);
        if (FAILED(hr))
        {
            return hr;
        }

        if (BG_JOB_STATE_TRANSFERRED == State)
        {
            // Makes the downloaded file available under its final name.
            hr = pJob->Complete();
            if (SUCCEEDED(hr))
            {
                pJob->GetProgress(&Progress);
                printf("Downloaded %llu bytes.\n", (unsigned long long)Progress.BytesTransferred);
            }
            return hr;
        }

        if (BG_JOB_STATE_ERROR == State)
        {
            hr = pJob->GetError(&pError);
            if (SUCCEEDED(hr))
            {
                hr = pError->GetErrorDescription(0x0409, &pszDescription);
                if (SUCCEEDED(hr))
                {
                    // glibc: wprintf(L"Error: %s\n", pszDescription);
                    fprintf(stderr, "Error: ");
                    fprint_wide(stderr, pszDescription);
                    fprintf(stderr, "\n");
                    CoTaskMemFree(pszDescription);
                }
                pError->Release();
            }
            pJob->Cancel();
            return E_FAIL;
        }

        if (BG_JOB_STATE_CANCELLED == State || BG_JOB_STATE_ACKNOWLEDGED == State)
        {
            return E_FAIL;
        }

        Sleep(100);
    }
}

// glibc: wmain(int argc, wchar_t* argv[]) on Windows.
int main(int argc, char* argv[])
{
    HRESULT hr;
    IBackgroundCopyManager* pbcm = NULL;
    IBackgroundCopyJob* pJob = NULL;
    GUID JobId;

    if (argc != 3)
    {
        fprintf(stderr, "usage: %s URL DESTINATION\n", argv[0]);
        return 2;
    }
    // glibc: the arguments arrive in UTF-8.
    WCHAR* pszRemoteName = widen(argv[1]);
    WCHAR* pszLocalName = widen(argv[2]);

    hr = CoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    if (SUCCEEDED(hr))
    {
        hr = CoCreateInstance(__uuidof(BackgroundCopyManager), NULL,
                              CLSCTX_LOCAL_SERVER,
                              __uuidof(IBackgroundCopyManager),
                              (void**) &pbcm);
        if (SUCCEEDED(hr))
        {
            hr = pbcm->CreateJob(L"MyDownloadJob", BG_JOB_TYPE_DOWNLOAD, &JobId, &pJob);
            if (SUCCEEDED(hr))
            {
                hr = pJob->AddFile(pszRemoteName, pszLocalName);
                if (SUCCEEDED(hr))
                {
                    hr = pJob->Resume();
                }
                if (SUCCEEDED(hr))
                {
                    hr = MonitorJob(pJob);
                }
                else
                {
                    pJob->Cancel();
                }
                pJob->Release();
            }
            pbcm->Release();
        }
        CoUninitialize();
    }

    if (FAILED(hr))
    {
        fprintf(stderr, "The download failed, hr=0x%08X.\n", (unsigned)hr);
    }
    free(pszRemoteName);
    free(pszLocalName);
    return SUCCEEDED(hr) ? 0 : 1;
}
